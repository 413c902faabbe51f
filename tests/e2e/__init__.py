"""The local stack (`make run`) over real HTTP: the API, the CLI, the README's commands."""

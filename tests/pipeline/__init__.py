"""Stream -> feedback -> queue -> delivery in-process on moto, with real receivers on 127.0.0.1; the jobs."""

"""The HTTP API through chalice.test.Client on moto: routes, auth, input, round trips, faults."""

"""Test support for the black-box suites: one way to start a server (server.py) and one
raw RFC 6455 client (wsclient.py)."""

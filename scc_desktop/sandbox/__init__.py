"""Local HTTPS emulators of Salesforce, Microsoft identity + Graph, and Google.

They bind 127.0.0.1 only, use their own CA that the clients trust, keep their state in SQLite
under a data folder, and behave like the real APIs (paging, delta tokens, error bodies,
throttling) so the real client libraries can be tested against them with no network.
"""

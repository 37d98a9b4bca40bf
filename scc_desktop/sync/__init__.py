"""The sync engine: one session keeps a mailbox and a Salesforce org in two-way sync.

Modules, one job each:
- `fields`: neutral field names per kind and the normalization behind change hashes;
- `ports`: the `SideRepository` protocol connector adapters implement (one per side per kind);
- `planner`: the pure decision matrix; `matching`: first-run pairing; `guard`: mass deletion;
- `state`: typed access to links, intents, retries, cursors, runs and issues;
- `recovery`: settling journalled writes after a crash; `resolutions`: "keep this one";
- `engine`: one kind's session; `session`: several kinds and the JSON summary;
- `memory`: in-memory repositories with fault injection, for tests and benchmarks.
No Qt and no network here: the tray worker and the CLI call `session.run_session`.
"""

"""The Salesforce gateway on simple-salesforce: matching, batched writes, change feeds.

Import the pieces from their modules (`gateway`, `client`, `writer`, `changes`, `matching`,
`files`, `soql`, `errors`); this package keeps its import light so `scc_desktop.auth` can use
the errors without a cycle.
"""

"""The mailbox side: neutral item types, the Mailbox protocol, and its connectors (graph/)."""

"""Sign-in flows and the credential store. Secrets live only in the OS keyring."""

"""The Salesforce emulator: OAuth, REST, SOQL and an org's rules over a persisted store."""

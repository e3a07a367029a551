"""How the ledger is stored: the event store's recorder and hash chain, the transcoder,
encryption, connections, the embedded server, migrations, backups."""

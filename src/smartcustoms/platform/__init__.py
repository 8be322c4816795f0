"""What every slice shares: settings, database engine, auth, errors, audit, events."""

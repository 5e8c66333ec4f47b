"""steward's read APIs over HTTP: Marquez's under `/api/v1`, steward's own under its prefix."""

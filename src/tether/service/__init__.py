"""Services: the shell around the pure model (catalog + store + fence + retries)."""

"""Operations helpers: database backups and restores, the local development server, generated docs."""

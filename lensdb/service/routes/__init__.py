"""The API's routers: ingest jobs, and reads (query, search, info, frames)."""

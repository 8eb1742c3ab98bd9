"""Running Kitteh without Docker: system programs, the embedded Postgres, nginx, the runner."""

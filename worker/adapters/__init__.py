"""Everything that talks to the outside: the database and the broker."""

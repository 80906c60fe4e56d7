"""What the hosts' own records say: builds from BuildKit's history given to clients, cache usage against its
limits and the disk."""

"""A fleet of build hosts: which host is each client's home (placement), and the client-side proxy that sends
builds to the next host while the home host does not answer (failover)."""

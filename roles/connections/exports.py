"""What others may use of the connections role: where the connection log is (insights read it)."""

LOG = "/var/lib/buildkit-ops/connections.log"   # (record.sh and the logrotate file write the same path)

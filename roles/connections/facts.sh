# connections: the tools the connection log needs, and whether its service is enabled and running
echo @@conn_tools; for t in conntrack logrotate; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true
echo @@conn_service; systemctl is-enabled buildkit-ops-connections.service 2>/dev/null; systemctl is-active buildkit-ops-connections.service 2>/dev/null || true

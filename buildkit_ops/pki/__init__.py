"""The operator's PKI: the CA (kept on the operator machine only), server and client certificates."""

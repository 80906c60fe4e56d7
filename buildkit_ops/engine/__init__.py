"""The engine: the role contract, the runner that carries it out on any target (gather, plan, check, apply,
handlers, verify), rendering and quoting that no value can break out of, and sessions to the targets."""

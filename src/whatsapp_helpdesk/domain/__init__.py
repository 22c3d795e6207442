"""Pure rules of the product: no I/O, time comes from an injected clock."""

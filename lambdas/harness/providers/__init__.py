"""Model providers behind one interface: each turns a canonical (Converse-shaped) request into a
stream of model events. One module per provider."""

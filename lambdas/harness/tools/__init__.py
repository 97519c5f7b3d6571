"""Tool types behind one registry: which tools the model sees, and how each call is routed."""

"""Model providers behind one interface: each turns a canonical (Converse-shaped) request into a
stream of model events.

- ``base``: the interface, the request and the events; ``registry``: which provider serves a model
  configuration; ``router``: fallback models and circuit breakers.
- One entry module per provider: ``bedrock``, ``openai`` (its formats in ``openai_chat`` and
  ``openai_responses``, what they share in ``openai_format`` and ``openai_errors``), ``gemini``
  (tool schemas in ``gemini_schema``), ``litellm`` (the ``openai_chat`` format) and ``local``.
- Shared by the providers: ``tool_use_ids`` (the id pattern and generated ids), ``call_errors``
  (caller-safe error text and HTTP statuses), ``config`` (reading a provider's configuration),
  ``client_cache`` (SDK clients kept across calls) and ``blocks`` (content a format cannot carry).
"""

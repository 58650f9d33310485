"""The OpenAI-compatible gateway in front of every model of a stack (LiteLLM proxy + our hooks).

`config` is pure (stack config -> LiteLLM config); `hooks/` holds the file shipped unchanged to
the pinned LiteLLM image; `eks` and `fargate` run it. It imports no platform package: platforms
call into it with how they reach their models.
"""

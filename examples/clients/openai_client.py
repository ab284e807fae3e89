"""Streams a chat completion from an AutoGLM server with the official OpenAI SDK for Python.

    AUTOGLM_BASE_URL  the OpenAI base URL: an AutoGLMDeployment's status.endpoint in the cluster
                      (kubectl get agd <name> -o jsonpath='{.status.endpoint}'), or
                      http://127.0.0.1:8000/v1 (the default) for `autoglm serve` or a port-forward
    AUTOGLM_API_KEY   one of the keys in runtime.apiKeySecret, where the server requires one
    AUTOGLM_MODEL     the served model name; by default the first one /v1/models lists

    pip install openai
    python examples/clients/openai_client.py "Why is the sky blue?"
"""

import os
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(
        base_url=os.environ.get("AUTOGLM_BASE_URL", "http://127.0.0.1:8000/v1"),
        # The SDK insists on a key; a server without runtime.apiKeySecret accepts any.
        api_key=os.environ.get("AUTOGLM_API_KEY", "none"),
    )
    model = os.environ.get("AUTOGLM_MODEL") or client.models.list().data[0].id
    prompt = sys.argv[1] if len(sys.argv) > 1 else "Say hello in one sentence."

    stream = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": prompt},
        ],
        max_completion_tokens=int(os.environ.get("AUTOGLM_MAX_TOKENS", "256")),
        stream=True,
        stream_options={"include_usage": True},
    )
    # Tokens arrive as they are generated; the last chunk carries the usage and no choices.
    for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
        if chunk.usage:
            print(f"\n[{chunk.usage.completion_tokens} tokens]", file=sys.stderr)
    print()


if __name__ == "__main__":
    main()

"""The result cache in Redis, so every worker shares it (queue mode)."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis


class RedisCache:
    def __init__(self, redis: Redis, ttl_s: int, prefix: str = "azr:cache:") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix

    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        try:
            raw = self.redis.mget([self.prefix + k for k in keys])
        except Exception:  # noqa: BLE001 - a cache outage only costs executions
            return [None] * len(keys)
        return [json.loads(v) if v else None for v in raw]

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self.prefix + key, json.dumps(value), ex=self.ttl_s)
                pipe.execute()
        except Exception:  # noqa: BLE001
            return

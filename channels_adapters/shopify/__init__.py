"""Shopify: the adapter (adapter.py), its GraphQL client (client.py) and pure payload mappers (mappers.py)."""

from channels_adapters.shopify.adapter import API_VERSION, ShopifyAdapter

__all__ = ["API_VERSION", "ShopifyAdapter"]

"""Shorewatch gateway: an asyncio service between devices, MQTT and Prometheus."""

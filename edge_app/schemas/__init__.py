"""JSON Schemas of the model metadata and the MQTT payloads (package data)."""

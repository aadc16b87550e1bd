"""Build, validate, sign and publish payment requests with confirms."""

from producer.producer import Producer, PublishOutcome

__all__ = ["Producer", "PublishOutcome"]

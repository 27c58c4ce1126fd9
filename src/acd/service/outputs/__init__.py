"""What the service sends out of itself, each derived from the journal: Asterisk's
``queue_log`` (:mod:`.queue_log`) and signed webhooks (:mod:`.webhooks`)."""

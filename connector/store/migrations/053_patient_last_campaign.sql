-- The patient look-up shows the last campaign that reached a patient: an index on the outbox for that one question.
CREATE INDEX IF NOT EXISTS delivery_outbox_patient_finished ON delivery_outbox (patient_id, finished_at DESC)
  WHERE state IN ('delivered', 'notice_sent');

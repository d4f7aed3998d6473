-- Issue #26, item 6: presence goes only to the members of conversations the user has written
-- in (sql/queries/realtime/presence.sql). "Has this user written in this conversation?" is
-- one probe of this index per conversation, however many messages either side has sent.
CREATE INDEX messages_sender_conversation_idx ON messages (sender_id, conversation_id);

-- A decision's JWS is part of its log entry (`data.jws`), which the log keeps anyway; storing
-- it again with the decision row doubled the bytes a push writes. Readers join log_entries.
ALTER TABLE decisions DROP COLUMN jws;

-- Reserved for issue 18 (alert rules and webhooks). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

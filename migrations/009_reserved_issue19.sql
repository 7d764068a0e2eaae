-- Reserved for issue 19 (service-side census). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

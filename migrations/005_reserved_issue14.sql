-- Reserved for issue 14 (newcomer fixes). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

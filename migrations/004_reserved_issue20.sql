-- Reserved for issue 20 (hostile-probe hardening). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

-- Reserved for issue 17 (identification beyond CHAOS). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

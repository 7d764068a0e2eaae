-- Reserved for issue 16 (live probe channel and on-demand measurements). Intentionally empty until that work lands;
-- rename the file and replace this comment with the schema change.
SELECT 1;

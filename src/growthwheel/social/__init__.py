"""Social selling: referral rewards (邀请有礼), group buying (拼团) and bargain by friends (砍价)."""

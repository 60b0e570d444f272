"""Inventory and demand forecasting (issue 15, items 5–6): the ``inventory`` fact (stock snapshots and
receipts per SKU), per-SKU demand forecasts chosen by a rolling-origin backtest, safety stock,
reorder points, EOQ, days of cover, turnover (库存周转率), stock-out risk and slow movers."""

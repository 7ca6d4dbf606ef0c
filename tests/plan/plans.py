"""Plan documents shared by the tracking plan tests."""

from __future__ import annotations

SHOP = """\
name: Shop
events:
  Order Completed:
    description: An order was paid.
    produced_by: [web, backend]
    consumed_by: [analytics, journeys]
    required: [order_id, revenue]
    properties:
      order_id: {type: string}
      revenue: {type: number, minimum: 0}
      currency: {type: string, pattern: "^[A-Z]{3}$"}
  Product Viewed:
    description: A product page was opened.
    produced_by: [web, ios]
    consumed_by: [analytics]
    properties:
      type: object
      required: [product_id]
      properties:
        product_id: {type: string}
        price: {type: number}
traits:
  description: Who the customer is.
  produced_by: [web, crm]
  consumed_by: [journeys]
  properties:
    email: {type: string, format: email}
    plan: {enum: [free, pro]}
page:
  properties:
    path: {type: string}
    title: {type: string}
"""

"""A shop backend on FastAPI whose optional modules react to each other's
events through one eventbus.

* ``accounting`` writes ledger entries when a till session closes and when a
  membership fee is charged;
* ``barcodes`` renders a barcode for every imported article;
* ``membership`` welcomes new members (by mail), charges their fee and
  credits loyalty points on their purchases.

The application core (``api``) only emits events; a module that is not
enabled simply does not react. Run it with::

    pip install 'eventbus[fastapi]' uvicorn
    uvicorn examples.shop.app:app --reload

``SHOP_MODULES=accounting,barcodes`` enables a subset of the modules.
"""

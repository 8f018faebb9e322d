"""Baseline: the FastAPI app a careful developer writes by hand for one table.

SQLAlchemy 2 async ORM on asyncpg, Pydantic v2 request and response models, a session per
request through FastAPI's dependency injection. Same URLs, JSON shape and pool size as the
generated API.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DSN = os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/tessera_bench")
engine = create_async_engine(
    DSN.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=10, max_overflow=0
)
Session = async_sessionmaker(engine, expire_on_commit=False)
Status = Literal["lead", "prospect", "customer", "churned", "partner"]


class Base(DeclarativeBase):
    pass


class Contact(Base):
    __tablename__ = "benchcrm_contact"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    account: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str = Field(max_length=60)
    last_name: str = Field(max_length=60)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    status: Status = "lead"
    amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)
    account: int | None = None


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    status: str
    amount: Decimal | None
    account: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: str | None
    updated_by: str | None
    version: int

    @field_serializer("id", "account")
    def _as_text(self, value: int | None) -> str | None:
        return None if value is None else str(value)

    @field_serializer("amount")
    def _decimal_text(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class One(BaseModel):
    data: ContactOut


class Meta(BaseModel):
    limit: int
    offset: int


class Page(BaseModel):
    data: list[ContactOut]
    meta: Meta


async def session() -> AsyncIterator[AsyncSession]:
    async with Session() as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(session)]
app = FastAPI()


@app.get("/api/v1/benchcrm/contact/{contact_id}", response_model=One)
async def get_contact(contact_id: int, s: SessionDep) -> Any:
    contact = await s.get(Contact, contact_id)
    if contact is None:
        raise HTTPException(404)
    return {"data": contact}


@app.get("/api/v1/benchcrm/contact", response_model=Page)
async def list_contacts(
    s: SessionDep,
    status: Status | None = None,
    sort: Literal["last_name"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    query = select(Contact)
    if status is not None:
        query = query.where(Contact.status == status)
    if sort == "last_name":
        query = query.order_by(Contact.last_name, Contact.id)
    else:
        query = query.order_by(Contact.id)
    rows = (await s.scalars(query.limit(limit).offset(offset))).all()
    return {"data": rows, "meta": {"limit": limit, "offset": offset}}


@app.post("/api/v1/benchcrm/contact", response_model=One, status_code=201)
async def create_contact(body: ContactIn, s: SessionDep) -> Any:
    now = dt.datetime.now(dt.UTC)
    contact = Contact(**body.model_dump(), created_at=now, updated_at=now, version=1)
    s.add(contact)
    await s.commit()
    return {"data": contact}

//! The catalogue of Lambda functions, at the bottom of the module graph (it depends on nothing
//! else in the crate): the HTTP endpoints, WebSocket routes and background functions, each written
//! once in its list (`http_endpoints!`, the `routes_enum!` of [`WsRoute`], `functions!`)
//! with its route key and name (its binary, its `events/<name>.json`, its resource in
//! `template.yaml`), and each one's [`Footprint`], the tables, queue and settings it uses. The
//! footprint decides what a function reads from its environment and which clients it builds; the
//! drift test (`functions/tests/template.rs`) holds the template to it.

/// Declares a catalogue enum from its one list, in order: each variant with its route key and its
/// function name (its binary, its `events/<name>.json`, its SAM resource). Generates the enum
/// (each variant documented with its route key, then the entry's own doc), `ALL` in list order,
/// `route_key()` and `function_name()`.
macro_rules! routes_enum {
    (
        $(#[$meta:meta])* $enum:ident {
            $($(#[$doc:meta])* $variant:ident = $route_key:literal => $name:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $enum {
            $(#[doc = concat!("`", $route_key, "`")] $(#[$doc])* $variant,)*
        }

        impl $enum {
            /// Every one, in the list's order.
            pub const ALL: [$enum; [$(stringify!($variant)),*].len()] = [$(Self::$variant),*];

            /// The API Gateway route key.
            pub fn route_key(self) -> &'static str {
                match self {
                    $(Self::$variant => $route_key,)*
                }
            }

            /// The function's name: its binary, its `events/<name>.json`, its SAM resource.
            pub fn function_name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

/// The HTTP endpoints, each written once: `Variant = "METHOD /path/{param}" => "function-name"`.
/// Adding an endpoint here adds its [`Endpoint`] variant, and `api::handle` then fails to compile
/// until `api/routes.rs` has its route type. Passes the list to `$callback!`, after any tokens
/// given with it.
macro_rules! http_endpoints {
    ($callback:ident $(, $($before:tt)*)?) => {
        $callback! {
            $($($before)*)? {
                Health = "GET /health" => "health",
                ListProducts = "GET /products" => "list-products",
                GetProduct = "GET /products/{id}" => "get-product",
                CreateProduct = "POST /products" => "create-product",
                UpdateProduct = "PUT /products/{id}" => "update-product",
                DeleteProduct = "DELETE /products/{id}" => "delete-product",
                CreateOrder = "POST /orders" => "create-order",
                GetOrder = "GET /orders/{id}" => "get-order",
                ListOrders = "GET /orders" => "list-orders",
                CancelOrder = "POST /orders/{id}/cancel" => "cancel-order",
                CreateHold = "POST /holds" => "create-hold",
                GetHold = "GET /holds/{id}" => "get-hold",
                PaymentWebhook = "POST /payments/webhook" => "payment-webhook",
            }
        }
    };
}
pub(crate) use http_endpoints;

http_endpoints!(
    routes_enum,
    /// Every HTTP endpoint; each one is its own Lambda function.
    Endpoint
);

routes_enum! {
    /// The WebSocket API's routes; each one is its own Lambda function.
    WsRoute {
        /// The handshake.
        Connect = "$connect" => "ws-connect",
        /// The connection closed (best effort: API Gateway may not deliver it).
        Disconnect = "$disconnect" => "ws-disconnect",
        /// Every message no other route selects.
        Default = "$default" => "ws-default",
    }
}

impl WsRoute {
    /// The `requestContext.eventType` API Gateway sends with the route.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Default => "MESSAGE",
        }
    }
}

/// A DynamoDB table of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Products and their live stock.
    Products,
    /// Orders.
    Orders,
    /// Idempotency records.
    Idempotency,
    /// Per-product lock items.
    Locks,
    /// Rate-limit counters.
    RateLimits,
    /// WebSocket connections.
    Connections,
    /// Stock holds and each user's count of active holds per product.
    Holds,
    /// Webhook deliveries and the outcomes waiting for their order.
    Webhooks,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 8] = [
        Table::Products,
        Table::Orders,
        Table::Idempotency,
        Table::Locks,
        Table::RateLimits,
        Table::Connections,
        Table::Holds,
        Table::Webhooks,
    ];

    /// The environment variable that names it.
    pub fn setting(self) -> &'static str {
        match self {
            Table::Products => "PRODUCTS_TABLE",
            Table::Orders => "ORDERS_TABLE",
            Table::Idempotency => "IDEMPOTENCY_TABLE",
            Table::Locks => "LOCKS_TABLE",
            Table::RateLimits => "RATE_LIMITS_TABLE",
            Table::Connections => "CONNECTIONS_TABLE",
            Table::Holds => "HOLDS_TABLE",
            Table::Webhooks => "WEBHOOKS_TABLE",
        }
    }

    /// Its name when the setting is unset (the local stack's names).
    pub fn default_name(self) -> &'static str {
        match self {
            Table::Products => "products",
            Table::Orders => "orders",
            Table::Idempotency => "idempotency",
            Table::Locks => "stock-locks",
            Table::RateLimits => "rate-limits",
            Table::Connections => "ws-connections",
            Table::Holds => "holds",
            Table::Webhooks => "payment-webhooks",
        }
    }
}

/// What a function uses. Everything outside it is neither read from the environment nor wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The tables it reads or writes.
    pub tables: &'static [Table],
    /// Verifies bearer tokens (`JWT_*`; the HS256 secret read from Secrets Manager when
    /// `JWT_SECRET_ID` names it, refreshed: `SECRETS_REFRESH_SECONDS`, `JWT_SECRET_OVERLAP_SECONDS`).
    pub authenticates: bool,
    /// Counts requests per caller (`RATE_LIMIT_PER_MINUTE`, with [`Table::RateLimits`]).
    pub rate_limited: bool,
    /// Sends to or checks the order queue (`ORDER_QUEUE_URL`).
    pub order_queue: bool,
    /// Pushes order events to WebSocket connections (`WS_MANAGEMENT_ENDPOINT`, with
    /// [`Table::Connections`]).
    pub pushes: bool,
    /// Takes stock locks (`STOCK_LOCKS`, `LOCK_*`).
    pub stock_locks: bool,
    /// Charges through the simulated provider (`PAYMENT_*`).
    pub payments: bool,
    /// Finds unsettled orders (`RECONCILE_AFTER_SECONDS`).
    pub reconciles: bool,
    /// Places holds (`HOLD_TTL_SECONDS`).
    pub holds: bool,
    /// Verifies payment webhook signatures with the secret `WEBHOOK_SECRET_ID` names (read from
    /// Secrets Manager and refreshed: `SECRETS_REFRESH_SECONDS`, `WEBHOOK_SECRET_OVERLAP_SECONDS`),
    /// or a literal `WEBHOOK_SECRET`.
    pub verifies_webhooks: bool,
    /// Holds new orders back from payment for the cancel window (`CANCEL_WINDOW_SECONDS`).
    pub cancel_window: bool,
}

impl Footprint {
    const NOTHING: Footprint = Footprint {
        tables: &[],
        authenticates: false,
        rate_limited: false,
        order_queue: false,
        pushes: false,
        stock_locks: false,
        payments: false,
        reconciles: false,
        holds: false,
        verifies_webhooks: false,
        cancel_window: false,
    };

    /// An HTTP endpoint behind authentication and the rate limit, using `tables` besides the
    /// rate-limit table.
    const fn http(tables: &'static [Table]) -> Footprint {
        Footprint {
            tables,
            authenticates: true,
            rate_limited: true,
            ..Footprint::NOTHING
        }
    }

    /// Whether it may read a secret from Secrets Manager at run time (the webhook secret, or the
    /// JWT secret of a function that verifies tokens), so its role may call
    /// `secretsmanager:GetSecretValue` on that secret (and no other role may), and it reads
    /// `SECRETS_REFRESH_SECONDS`.
    pub const fn reads_secrets(&self) -> bool {
        self.verifies_webhooks || self.authenticates
    }

    /// Everything: the local stack, which runs every function in one process.
    pub fn everything() -> Footprint {
        Footprint {
            tables: &Table::ALL,
            authenticates: true,
            rate_limited: true,
            order_queue: true,
            pushes: true,
            stock_locks: true,
            payments: true,
            reconciles: true,
            holds: true,
            verifies_webhooks: true,
            cancel_window: true,
        }
    }
}

/// Declares [`Function`] from the list of background functions (`Variant => "function-name"`):
/// every HTTP endpoint and WebSocket route, then these, in order.
macro_rules! functions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Every Lambda function of the application.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function {
            /// One HTTP endpoint (HTTP API route).
            Http(Endpoint),
            /// One WebSocket API route.
            Ws(WsRoute),
            $($(#[$doc])* $variant,)*
        }

        impl Function {
            /// Every function: the endpoints, the WebSocket routes, then the background functions.
            pub fn all() -> Vec<Function> {
                let http = Endpoint::ALL.into_iter().map(Function::Http);
                let ws = WsRoute::ALL.into_iter().map(Function::Ws);
                http.chain(ws).chain([$(Function::$variant),*]).collect()
            }

            /// The function's name: its binary, its `events/<name>.json`, its `Binary` in the
            /// template.
            pub fn name(self) -> &'static str {
                match self {
                    Function::Http(endpoint) => endpoint.function_name(),
                    Function::Ws(route) => route.function_name(),
                    $(Function::$variant => $name,)*
                }
            }
        }
    };
}

functions! {
    /// The payment consumer on the order queue.
    OrderConsumer => "order-consumer",
    /// The scheduled reconciler.
    Reconciler => "reconciler",
    /// The scheduled sweeper that expires holds whose time is up.
    HoldSweeper => "hold-sweeper",
}

impl Function {
    /// How long one invocation may run: its `Timeout` in `template.yaml` (the template's own
    /// `Globals` value where it sets none; `functions/tests/template.rs` holds the two together).
    /// The local gateway puts the same deadline in the invocation context.
    pub fn timeout(self) -> std::time::Duration {
        let seconds = match self {
            // Their waits end before it (`application/budget.rs`); the consumer's charge, the
            // webhook's settlement and a cancel's stock return take a few round trips each.
            Function::Http(
                Endpoint::CreateOrder
                | Endpoint::CancelOrder
                | Endpoint::CreateHold
                | Endpoint::PaymentWebhook,
            )
            | Function::OrderConsumer => 10,
            // A whole sweep per run.
            Function::Reconciler | Function::HoldSweeper => 30,
            // A ping's answer: a client waits on it.
            Function::Ws(WsRoute::Default) => 3,
            _ => 6,
        };
        std::time::Duration::from_secs(seconds)
    }

    /// What it uses.
    pub fn footprint(self) -> Footprint {
        use Table::*;
        // Every authenticated endpoint also counts requests in RateLimits.
        const PRODUCTS: &[Table] = &[Products, RateLimits];
        const ORDERS: &[Table] = &[Orders, RateLimits];
        match self {
            // Probes every table (DescribeTable only) and the queue.
            Function::Http(Endpoint::Health) => Footprint {
                tables: &Table::ALL,
                order_queue: true,
                ..Footprint::NOTHING
            },
            Function::Http(
                Endpoint::ListProducts
                | Endpoint::GetProduct
                | Endpoint::CreateProduct
                | Endpoint::UpdateProduct,
            ) => Footprint::http(PRODUCTS),
            // The deletion leaves a mark in the holds table that ends its holds' checkouts.
            Function::Http(Endpoint::DeleteProduct) => {
                Footprint::http(&[Products, Holds, RateLimits])
            }
            // From items or from a hold; a webhook that came first is applied right after commit.
            Function::Http(Endpoint::CreateOrder) => Footprint {
                order_queue: true,
                cancel_window: true,
                stock_locks: true,
                pushes: true,
                ..Footprint::http(&[
                    Products,
                    Orders,
                    Idempotency,
                    Locks,
                    Holds,
                    Webhooks,
                    RateLimits,
                    Connections,
                ])
            },
            Function::Http(Endpoint::CreateHold) => Footprint {
                holds: true,
                ..Footprint::http(&[Products, Holds, RateLimits])
            },
            Function::Http(Endpoint::GetHold) => Footprint::http(&[Holds, RateLimits]),
            // The provider signs instead of a user token; API Gateway's stage throttling limits it.
            Function::Http(Endpoint::PaymentWebhook) => Footprint {
                tables: &[Products, Orders, Webhooks, Connections],
                pushes: true,
                verifies_webhooks: true,
                ..Footprint::NOTHING
            },
            Function::Http(Endpoint::GetOrder | Endpoint::ListOrders) => Footprint::http(ORDERS),
            Function::Http(Endpoint::CancelOrder) => Footprint {
                pushes: true,
                ..Footprint::http(&[Products, Orders, RateLimits, Connections])
            },
            Function::Ws(WsRoute::Connect) => Footprint {
                tables: &[Connections],
                authenticates: true,
                ..Footprint::NOTHING
            },
            Function::Ws(WsRoute::Disconnect) => Footprint {
                tables: &[Connections],
                ..Footprint::NOTHING
            },
            Function::Ws(WsRoute::Default) => Footprint::NOTHING,
            // Applies a webhook's pending outcome instead of charging when one is waiting.
            Function::OrderConsumer => Footprint {
                tables: &[Products, Orders, Webhooks, Connections],
                pushes: true,
                payments: true,
                ..Footprint::NOTHING
            },
            // Sweeps the stock journal too: the products' shard items and their owners.
            Function::Reconciler => Footprint {
                tables: &[Products, Orders, Holds],
                order_queue: true,
                reconciles: true,
                cancel_window: true,
                ..Footprint::NOTHING
            },
            Function::HoldSweeper => Footprint {
                tables: &[Products, Holds],
                ..Footprint::NOTHING
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_footprint_stays_inside_everything() {
        let all = Function::all();
        let mut names: Vec<_> = all.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for function in all {
            let footprint = function.footprint();
            // Health only describes the rate-limit table, as every other; it counts nothing.
            let probes_every_table = function == Function::Http(Endpoint::Health);
            assert_eq!(
                footprint.rate_limited,
                footprint.tables.contains(&Table::RateLimits) && !probes_every_table,
                "{}",
                function.name()
            );
            assert!(
                !footprint.pushes || footprint.tables.contains(&Table::Connections),
                "{}",
                function.name()
            );
        }
    }
}

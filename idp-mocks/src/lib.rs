pub mod bis_register;
pub mod cobrha;
pub mod demo_app;
pub mod eid_ca;
pub mod eidas;
pub mod eudiw;
pub mod fas;
pub mod registry_mock;

pub mod zkcli;

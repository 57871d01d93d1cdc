//! The measurement engine behind `unipc bench`: placeholder until the bench
//! change lands.

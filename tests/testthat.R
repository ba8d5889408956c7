library(testthat)
library(srnomogram)

test_check("srnomogram")

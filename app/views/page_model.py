"""Page script of the Model page (a file, so that st.navigation and AppTest.switch_page both find it)."""

from app.views import model
from app.views.run import run_page

run_page(model, "Model")
